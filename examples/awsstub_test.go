package examples

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// awsStub is a loopback stand-in for AWS's APIs. Debian's AWS CLI (awscli)
// checks every request against AWS's own service model before it sends it:
// a parameter that does not exist, a missing required one or a value of the
// wrong type fails there. The stub records what arrives and answers with an
// empty success in the service's protocol, so that the CLI exits 0.
type awsStub struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []awsCall
}

// awsCall is one API call the CLI made.
type awsCall struct {
	Service   string         // from the signature's credential scope: "ecs", "iam", ...
	Operation string         // "RegisterTaskDefinition"
	JSON      map[string]any // the input of a JSON-protocol call
	Form      url.Values     // the input of a query-protocol call
}

var credentialScope = regexp.MustCompile(`Credential=[^/]+/[0-9]+/[^/]+/([^/]+)/aws4_request`)

func newAWSStub(t *testing.T) *awsStub {
	s := &awsStub{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *awsStub) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := awsCall{}
	if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		c.Service = m[1]
	}
	if c.Service == "s3" { // REST: the operation is the method
		c.Operation = r.Method
		w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
		// A file over the CLI's multipart threshold (8 MB) goes up in
		// parts: create the upload, PUT each part, complete it.
		switch q := r.URL.Query(); {
		case r.Method == http.MethodPost && q.Has("uploads"):
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, `<InitiateMultipartUploadResult><Bucket>stub</Bucket><Key>stub</Key><UploadId>stub-upload</UploadId></InitiateMultipartUploadResult>`)
		case r.Method == http.MethodPost && q.Has("uploadId"):
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, `<CompleteMultipartUploadResult><Location>stub</Location><Bucket>stub</Bucket><Key>stub</Key><ETag>"d41d8cd98f00b204e9800998ecf8427e-2"</ETag></CompleteMultipartUploadResult>`)
		}
	} else if target := r.Header.Get("X-Amz-Target"); target != "" {
		_, c.Operation, _ = strings.Cut(target, ".")
		_ = json.Unmarshal(body, &c.JSON)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		switch c.Operation {
		case "GetAuthorizationToken": // aws ecr get-login-password
			fmt.Fprint(w, `{"authorizationData":[{"authorizationToken":"QVdTOnN0dWItcGFzc3dvcmQ=","expiresAt":1900000000,"proxyEndpoint":"https://stub.invalid"}]}`)
		default:
			fmt.Fprint(w, `{}`)
		}
	} else {
		c.Form, _ = url.ParseQuery(string(body))
		c.Operation = c.Form.Get("Action")
		w.Header().Set("Content-Type", "text/xml")
		if c.Service == "ec2" {
			fmt.Fprintf(w, `<%[1]sResponse><requestId>stub</requestId><return>true</return></%[1]sResponse>`, c.Operation)
		} else {
			fmt.Fprintf(w, `<%[1]sResponse><%[1]sResult/><ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></%[1]sResponse>`, c.Operation)
		}
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
}

// call returns the recorded call of an operation, or nil.
func (s *awsStub) call(service, op string) *awsCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.calls {
		if s.calls[i].Service == service && s.calls[i].Operation == op {
			return &s.calls[i]
		}
	}
	return nil
}

// awsCLI returns Debian's aws command (package awscli), or skips; with
// HOSTGUARD_REQUIRE_E2E=1 (CI) it fails instead.
func awsCLI(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/aws"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("HOSTGUARD_REQUIRE_E2E") == "1" {
		t.Fatal("Debian's awscli is required (HOSTGUARD_REQUIRE_E2E=1): apt-get install awscli")
	}
	t.Skip("Debian's awscli is not installed (apt-get install awscli)")
	return ""
}

// runAWS runs an aws command line against the stub, in dir, with made-up
// credentials and no configuration or instance metadata to fall back on.
func (s *awsStub) runAWS(cli, dir string, args []string) error {
	cmd := exec.Command(cli, append(args, "--endpoint-url", s.srv.URL)...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=/usr/bin:/bin", "HOME=" + dir,
		"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_DEFAULT_REGION=eu-west-1", "AWS_REGION=eu-west-1", "AWS_PAGER=",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"AWS_EC2_METADATA_DISABLED=true", // never ask 169.254.169.254 for credentials
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
