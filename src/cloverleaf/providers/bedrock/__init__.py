"""AWS Bedrock: Converse, InvokeModel, SigV4."""
