# A minimal hostguard image: a static binary on scratch, run as a non-root
# user. docker build -t hostguard . ; docker run -p 8080:8080 hostguard
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/hostguard ./cmd/hostguard

FROM scratch
# CA certificates for https:// upstreams.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/hostguard /hostguard
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/hostguard"]
CMD ["proxy", "--allow", "example.com"]
