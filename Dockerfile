# hostguard's image: a static binary on scratch, run as a non-root user. The
# deployment examples run it beside the app (ECS, Kubernetes) or copy the
# binary from it (Elastic Beanstalk Docker).
#
# Release images do not come from this file: packaging/image/build writes
# each release's image (linux/amd64 and linux/arm64 under one index, the
# same files and settings as below plus OCI labels, reproducible byte for
# byte) as an OCI archive from the release binaries, without Docker;
# docs/container.md says how to load, run and push it. This file is for
# building your own from a checkout with Docker. Build and push it to ECR:
#
#   docker build --platform linux/amd64 --build-arg VERSION=1.0.0 \
#     -t <account-id>.dkr.ecr.<region>.amazonaws.com/hostguard:1.0.0 .
#   docker push <account-id>.dkr.ecr.<region>.amazonaws.com/hostguard:1.0.0
#
# (linux/arm64 for Graviton.) Locally: docker build -t hostguard . ;
# docker run -p 8080:8080 hostguard
FROM golang:1.26-bookworm AS build
WORKDIR /src
# The command is a module of its own (cmd/hostguard) whose go.mod requires
# the library, discover and proxy at the release's version, with no replace
# directive; the repository's go.work, which holds those four modules only,
# puts this checkout in their place, so that the image is built from the
# sources copied here and nothing of bench/ or examples/ is fetched.
COPY . .
ARG VERSION=dev
RUN cd cmd/hostguard && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/hostguard .

FROM scratch
# CA certificates for https:// upstreams.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/hostguard /hostguard
# A numeric user, so that Kubernetes can verify runAsNonRoot.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/hostguard"]
CMD ["proxy", "--allow", "example.com"]
