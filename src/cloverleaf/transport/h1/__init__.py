"""cloverleaf's own HTTP/1.1 client on httptools: the connection protocol and the pools."""
