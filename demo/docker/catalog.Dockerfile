# catalog (Python) of the Waymark demo. Build with demo/ as the context:
#   docker build -f demo/docker/catalog.Dockerfile -t waymark-demo/catalog demo
# Runs the same command as demo/run.sh; configure it with the variables in demo/README.md.
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY python/ ./python/
RUN useradd --system --uid 10001 --no-create-home demo
ENV PYTHONUNBUFFERED=1 \
    DEMO_BIND_HOST=0.0.0.0 \
    CATALOG_PORT=8092 \
    CATALOG_DB_PATH=/tmp/catalog.sqlite \
    OTEL_EXPORTER_OTLP_ENDPOINT=http://waymark:4318
USER demo
EXPOSE 8092
CMD ["python", "python/catalog.py"]
