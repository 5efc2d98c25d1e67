#!/bin/bash
# Logs the instance's Docker in to the ECR registry that holds the hostguard
# image the Dockerfile starts from, with the instance profile's permission
# (ecr:GetAuthorizationToken, instance-profile-policy.json).
set -euo pipefail
registry=<account-id>.dkr.ecr.<region>.amazonaws.com
region=<region>
aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"
