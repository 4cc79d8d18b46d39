"""OpenAI: Chat Completions, Responses, embeddings and images."""
