"""Azure OpenAI: the OpenAI wire with Azure's URLs and auth."""
