#!/usr/bin/env python3
"""The S3 baseline of `bench_share` (crates/repro-share/examples/bench_share.rs): what the AWS
CLI's `aws s3 cp --recursive` does, through the same engine (boto3's transfer manager), with 8
files in flight.

    bench_s3_client.py upload DIR s3://BUCKET/PREFIX
    bench_s3_client.py download DIR s3://BUCKET/PREFIX   (fetches what `upload` put there)

Credentials, region and endpoint come from the environment, as for `repro push`
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL).
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3


def main() -> None:
    what, folder, url = sys.argv[1:4]
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    if what == "upload":
        files = [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs]
        jobs = [(f, f"{prefix}/{os.path.relpath(f, folder)}") for f in files]
        call = lambda j: s3.upload_file(j[0], bucket, j[1])  # noqa: E731
    else:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
        jobs = [(os.path.join(folder, os.path.relpath(k, prefix)), k) for k in keys]
        for f, _ in jobs:
            os.makedirs(os.path.dirname(f), exist_ok=True)
        call = lambda j: s3.download_file(bucket, j[1], j[0])  # noqa: E731
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(call, jobs))


if __name__ == "__main__":
    main()
