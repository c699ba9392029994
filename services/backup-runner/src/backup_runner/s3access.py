"""Least privilege on S3 for backup-runner: its own bucket (and prefix), nothing else.

Two renderings of the same grant: a SeaweedFS identity (``weed -s3.config``) and an IAM
policy for AWS S3 or MinIO (``mc admin policy create``). backup-runner reads, writes,
lists and deletes (retention prunes) objects under the prefix, and needs nothing else.
"""

from __future__ import annotations

from typing import Any


def _scope(bucket: str, prefix: str) -> str:
    # SeaweedFS matches a scope with a trailing `*` as a prefix; `bucket/prefix` alone
    # matches nothing below it (seen with seaweedfs 4.48).
    return f"{bucket}/{prefix.strip('/')}/*" if prefix.strip("/") else bucket


def seaweed_identity(
    name: str, access_key: str, secret_key: str, bucket: str, prefix: str = ""
) -> dict[str, Any]:
    """A SeaweedFS S3 identity that may read, write and list ``bucket[/prefix]`` only."""
    scope = _scope(bucket, prefix)
    return {
        "name": name,
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": [f"Read:{scope}", f"Write:{scope}", f"List:{scope}", f"Tagging:{scope}"],
    }


def iam_policy(bucket: str, prefix: str = "") -> dict[str, Any]:
    """The same grant as an IAM policy document (AWS S3, MinIO)."""
    keys = f"{prefix.strip('/')}/*" if prefix.strip("/") else "*"
    statement: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectTagging"],
            "Resource": [f"arn:aws:s3:::{bucket}/{keys}"],
        },
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
            **({"Condition": {"StringLike": {"s3:prefix": [keys]}}} if keys != "*" else {}),
        },
    ]
    return {"Version": "2012-10-17", "Statement": statement}
