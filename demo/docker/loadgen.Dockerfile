# The load driver of the Waymark demo. Build with demo/ as the context:
#   docker build -f demo/docker/loadgen.Dockerfile -t waymark-demo/loadgen demo
# Runs the same command as demo/run.sh; configure it with the LOAD_* variables in demo/README.md.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY node/ ./node/
ENV NODE_ENV=production \
    FRONTEND_URL=http://frontend:8080 \
    SERVICE_A_URL=http://service-a:8081
# the unprivileged user of the node image
USER node
CMD ["node", "node/loadgen.js"]
