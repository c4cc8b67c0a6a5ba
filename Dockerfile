# iam-tailor: the operator image. Multi-stage: build with the Rust toolchain, run the single
# binary on distroless (glibc and CA certificates, no shell) as a non-root user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The same command CI runs (scripts/build-release): a locked release build of the binary. The
# release profile keeps line tables for profiling; the image does not need them.
RUN scripts/build-release && strip --strip-debug target/release/iam-tailor

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/iam-tailor /usr/local/bin/iam-tailor
# distroless's nonroot user; the chart also sets runAsNonRoot and a read-only root file system.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/iam-tailor"]
CMD ["controller"]
