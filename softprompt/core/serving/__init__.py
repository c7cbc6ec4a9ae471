"""The prompt server (HTTP app, micro-batcher, prompt registry, metrics, Ray Serve wrapper);
may import io..inference, fastapi, uvicorn, prometheus_client, watchfiles, ray. Only `engine`
calls the model, through the one batched inference path."""
