# cnnserve image: build stage (dev packages, Release build, unit tests) and a
# slim runtime stage (runtime libraries, the two binaries and models/).
#   docker build -t cnnserve .
#   docker run -p 8000:8000 -p 8001:8001 cnnserve
# tests/deploy/dockerfile_test.sh runs these very steps in debootstrap
# chroots, so keep every step a plain RUN/COPY/ENV/WORKDIR/USER line.

FROM debian:bookworm-slim AS build
WORKDIR /src
COPY . /src
RUN apt-get update -q && apt-get install -y -q --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
RUN scripts/install-deps
RUN BUILD_DIR=build BUILD_TYPE=Release scripts/build -DCNNSERVE_BUILD_BENCHMARKS=OFF
RUN cd build && ctest -L unit -j"$(nproc)" --output-on-failure -E "BigModels"

FROM debian:bookworm-slim
RUN apt-get update -q && apt-get install -y -q --no-install-recommends libgrpc++1.51 libprotobuf32 libdnnl2 libabsl20220623 libprometheus-cpp-core1.0 libcivetweb1 libssl3 libturbojpeg0 libspng0 libonnx1 libgomp1 ocl-icd-libopencl1 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cnnserve
COPY --from=build /src/build/bin/cnnserve /src/build/bin/cnnserve-client /usr/local/bin/
COPY --from=build /src/models /models
USER 10001
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 CMD ["cnnserve-client", "health", "--server=127.0.0.1:8001"]
# A container has a cgroup of its own: inference threads run only on cycles
# the RPC threads leave (--batch_thread_policy=idle; --helpfull says more).
ENTRYPOINT ["cnnserve", "--model_repository=/models", "--batch_thread_policy=idle"]
