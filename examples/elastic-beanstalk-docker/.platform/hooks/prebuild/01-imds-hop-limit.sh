#!/bin/bash
# A container on the Docker bridge is one network hop further from the
# instance metadata service than the instance. With a hop limit of 1 the
# IMDSv2 token answer never reaches it and hostguard refuses to start the
# app. This raises the limit to 2 for this instance (a no-op where it is 2
# already: AMIs with ImdsSupport v2.0, account defaults). The instance profile needs
# ec2:ModifyInstanceMetadataOptions (instance-profile-policy.json). A hop
# limit of 2 also lets every container on the instance read the instance
# role's credentials: see README.
set -euo pipefail
imds=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
imds=${imds%/}
token=$(curl -fsS -m 5 -X PUT "$imds/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 60")
get() { curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/$1"; }
id=$(get instance-id)
region=$(get placement/region)
aws ec2 modify-instance-metadata-options --region "$region" --instance-id "$id" \
	--http-put-response-hop-limit 2 --http-endpoint enabled --http-tokens required
