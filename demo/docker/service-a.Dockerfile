# service-a (Node) of the Waymark demo. Build with demo/ as the context:
#   docker build -f demo/docker/service-a.Dockerfile -t waymark-demo/service-a demo
# Runs the same command as demo/run.sh; configure it with the variables in demo/README.md.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY node/ ./node/
ENV NODE_ENV=production \
    DEMO_BIND_HOST=0.0.0.0 \
    SERVICE_A_PORT=8081 \
    SERVICE_B_URL=http://service-b:8082 \
    OTEL_EXPORTER_OTLP_ENDPOINT=http://waymark:4318
# the unprivileged user of the node image
USER node
EXPOSE 8081
CMD ["node", "node/service-a.js"]
