// Package e2e proves hostguard's story with real parts: HAProxy configured
// like an ALB target group, instances on their own loopback addresses with
// their own amazon-ec2-metadata-mock, a real Django app under gunicorn and
// the Go example app. See e2e_test.go for the scenarios.
package e2e
