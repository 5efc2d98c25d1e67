package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

const (
	imdsSource     = "ec2 metadata"
	imdsDefaultV4  = "http://169.254.169.254"
	imdsDefaultV6  = "http://[fd00:ec2::254]"
	hopLimitFix    = "aws ec2 modify-instance-metadata-options --instance-id <id> --http-put-response-hop-limit 2 (launch template: HttpPutResponseHopLimit: 2)"
	imdsEnableFix  = "aws ec2 modify-instance-metadata-options --instance-id <id> --http-endpoint enabled"
	maxMetadataLen = 64 << 10
)

// imdsConfig is the EC2 metadata client configuration resolved from the
// options and the environment, the way the AWS SDK resolves it.
type imdsConfig struct {
	endpoint   string
	mode       imds.EndpointModeState
	disabled   bool
	noFallback bool
}

func (d *discoverer) imdsConfig() imdsConfig {
	c := imdsConfig{mode: imds.EndpointModeStateIPv4}
	def := imdsDefaultV4
	if strings.EqualFold(d.getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"), "ipv6") {
		c.mode, def = imds.EndpointModeStateIPv6, imdsDefaultV6
	}
	c.endpoint = strings.TrimRight(cmp.Or(d.o.IMDSEndpoint, d.getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"), def), "/")
	c.disabled = strings.EqualFold(d.getenv("AWS_EC2_METADATA_DISABLED"), "true")
	c.noFallback = d.o.DisableIMDSv1 || strings.EqualFold(d.getenv("AWS_EC2_METADATA_V1_DISABLED"), "true")
	return c
}

// ec2 adds the instance's private addresses from the EC2 metadata service:
// the primary local-ipv4 and every interface's local-ipv4s and ipv6s.
func (d *discoverer) ec2(ctx context.Context, res *Result) error {
	c := d.imdsConfig()
	if c.disabled {
		return &SourceError{Source: imdsSource, Err: errors.New("disabled by AWS_EC2_METADATA_DISABLED=true"),
			Hint: "unset AWS_EC2_METADATA_DISABLED, or give the addresses with --self / HOSTGUARD_SELF"}
	}
	fallback := aws.TrueTernary
	version := "IMDSv2, falling back to IMDSv1"
	if c.noFallback {
		fallback, version = aws.FalseTernary, "IMDSv2 only"
	}
	res.note("asking the EC2 metadata service at %s (%s)", c.endpoint, version)
	client := imds.New(imds.Options{
		Endpoint:          c.endpoint,
		EndpointMode:      c.mode,
		ClientEnableState: imds.ClientEnabled,
		EnableFallback:    fallback,
		// The SDK's own choice: fail fast when the token answer is dropped
		// after one hop (a container with hop limit 1).
		HTTPClient: d.httpClient(500 * time.Millisecond),
		// One retry after a short pause: the SDK's exponential backoff
		// would spend the whole deadline waiting.
		DisableDefaultMaxBackoff: true, // it would replace the backoff below
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 2
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 100 * time.Millisecond, nil })
		}),
	})
	get := func(path string) (string, error) {
		out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			return "", d.imdsError(ctx, c, path, err)
		}
		defer out.Content.Close()
		b, err := io.ReadAll(io.LimitReader(out.Content, maxMetadataLen))
		if err != nil {
			return "", d.imdsError(ctx, c, path, err)
		}
		return string(b), nil
	}
	addList := func(path, body string) error {
		addrs, err := parseAddrs(body)
		if err != nil {
			return &SourceError{Source: imdsSource, URL: c.endpoint + "/latest/meta-data/" + path, Err: fmt.Errorf("garbage answer %q: %w", truncate(body), err),
				Hint: "the endpoint is not an EC2 metadata service, or a proxy in between rewrote the answer"}
		}
		for _, a := range addrs {
			res.add(a, imdsSource+" "+path)
		}
		return nil
	}

	primary, err := get("local-ipv4")
	switch {
	case err == nil:
		if err := addList("local-ipv4", primary); err != nil {
			return err
		}
	case statusOf(err) == 404: // an IPv6-only instance has none
	default:
		return err
	}
	macs, err := get("network/interfaces/macs/")
	if err != nil {
		return err
	}
	for _, line := range strings.Fields(macs) {
		mac := strings.TrimSuffix(line, "/")
		if !isMAC(mac) {
			return &SourceError{Source: imdsSource, URL: c.endpoint + "/latest/meta-data/network/interfaces/macs/",
				Err: fmt.Errorf("garbage answer: %q is not a MAC address", truncate(line))}
		}
		for _, kind := range []string{"local-ipv4s", "ipv6s"} {
			path := "network/interfaces/macs/" + mac + "/" + kind
			body, err := get(path)
			if statusOf(err) == 404 {
				continue // no addresses of that family on this interface
			}
			if err != nil {
				return err
			}
			if err := addList(path, body); err != nil {
				return err
			}
		}
	}
	if len(res.Addresses) == 0 {
		return &SourceError{Source: imdsSource, URL: c.endpoint, Err: errors.New("the metadata service listed no address")}
	}
	return nil
}

func isMAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return false
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// imdsError names the failed request and the likely fix.
func (d *discoverer) imdsError(ctx context.Context, c imdsConfig, path string, err error) error {
	e := &SourceError{Source: imdsSource, URL: c.endpoint + "/latest/meta-data/" + path, Err: err}
	switch code := statusOf(err); {
	case code == 401:
		e.Hint = "IMDSv2 token missing, rejected or expired"
		if c.noFallback {
			e.Hint += "; IMDSv1 fallback is off, so the token request itself failed: in a container this is the hop limit: " + hopLimitFix
		} else {
			e.Hint += " and the instance requires IMDSv2 (HttpTokens=required): in a container the token answer needs a hop limit of 2: " + hopLimitFix
		}
	case code == 403:
		e.Hint = "the instance metadata service is disabled on this instance: " + imdsEnableFix
	case code == 404:
		e.Hint = "no such metadata path; the endpoint may not be an EC2 metadata service"
	case code >= 500:
		e.Hint = fmt.Sprintf("the metadata service failed (status %d); it is usually transient", code)
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Hint = "nothing listens there; check --imds-endpoint / AWS_EC2_METADATA_SERVICE_ENDPOINT, or whether this is EC2 at all"
	case isTimeout(err) || ctx.Err() != nil:
		e.Hint = fmt.Sprintf("no answer within the %s deadline; in a Docker container on EC2 the IMDSv2 token answer is dropped when the hop limit is 1: %s; if this is not EC2, name the platform with --platform", d.timeout, hopLimitFix)
	}
	return e
}
