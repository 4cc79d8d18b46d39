"""Incremental, I/O-free stream decoders (SSE, NDJSON, AWS event-stream) and the
accumulator that assembles decoded events into a complete response."""
