"""LLM motivation extraction: prompts, schemas, backends, the store and the job."""
