# Waymark, all modes in one image. Build: docker build -t waymark .
# Runs all-in-one by default; pass a subcommand (collector, query, agent)
# and flags as arguments. Configuration by flags or WAYMARK_* variables.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p waymark \
 && strip target/release/waymark

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/waymark waymark \
 && mkdir -p /var/lib/waymark \
 && chown waymark:waymark /var/lib/waymark
COPY --from=build /src/target/release/waymark /usr/local/bin/waymark
USER 10001:10001
ENV WAYMARK_DATA_DIR=/var/lib/waymark
VOLUME ["/var/lib/waymark"]
# OTLP gRPC/HTTP, Zipkin, Jaeger UDP compact/binary, sampling, Jaeger gRPC
# and HTTP, query gRPC and HTTP/UI, admin.
EXPOSE 4317 4318 9411 6831/udp 6832/udp 5778 14250 14268 16685 16686 14269
# /health on the admin port; the image has no curl, bash's /dev/tcp does.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/14269 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/waymark"]
