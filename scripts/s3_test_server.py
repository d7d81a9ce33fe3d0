#!/usr/bin/env python3
"""A local S3-compatible server for repro-share's tests: moto's, with credentials enforced.

    python scripts/s3_test_server.py [BUCKET]

Starts moto's server on a free port of 127.0.0.1, creates an IAM user allowed s3:* with an
access key, and BUCKET (default `repro-test`), then turns moto's authentication on (its
`/moto-api/reset-auth` hook, the INITIAL_NO_AUTH_ACTION_COUNT mechanism): from then on a
request signed with any other key, or a wrong secret, is refused with 403. Prints one JSON line

    {"endpoint": "http://127.0.0.1:PORT", "bucket": ..., "region": "us-east-1",
     "access_key_id": ..., "secret_access_key": ...}

and serves until its stdin closes (the test that started it ended or died), so it never
outlives its test. Needs `moto[server]` (scripts/setup.sh installs it into the venv).
"""

import json
import sys
import urllib.request


def main() -> None:
    bucket = sys.argv[1] if len(sys.argv) > 1 else "repro-test"
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    region = "us-east-1"
    # Before authentication is on, any key works: the set-up's own.
    setup = dict(
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="repro")
    iam.put_user_policy(
        UserName="repro",
        PolicyName="s3",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="repro")["AccessKey"]
    boto3.client("s3", **setup).create_bucket(Bucket=bucket)
    # Authentication on from the next request: only the user's key, signed right, is let in.
    req = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(req).read()
    print(
        json.dumps(
            {
                "endpoint": endpoint,
                "bucket": bucket,
                "region": region,
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
            }
        ),
        flush=True,
    )
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
