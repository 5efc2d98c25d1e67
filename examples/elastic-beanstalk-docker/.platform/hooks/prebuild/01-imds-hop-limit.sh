#!/bin/bash
# A container on the Docker bridge is one network hop further from the
# instance metadata service than the instance. With the default hop limit of
# 1 the IMDSv2 token answer never reaches it and discovery times out. Raise
# the limit to 2 for this instance. The instance profile needs the IAM
# permission ec2:ModifyInstanceMetadataOptions. (Launch templates can set
# HttpPutResponseHopLimit: 2 instead.)
set -euo pipefail
imds=http://169.254.169.254
token=$(curl -fsS -m 2 -X PUT "$imds/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 60")
id=$(curl -fsS -m 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/instance-id")
region=$(curl -fsS -m 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/placement/region")
aws ec2 modify-instance-metadata-options --region "$region" --instance-id "$id" \
	--http-put-response-hop-limit 2 --http-endpoint enabled
