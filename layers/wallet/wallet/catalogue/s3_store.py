"""The catalogue's storage: our S3 bucket (the CloudFront default origin) and CloudFront invalidations.

The only module that speaks S3 and CloudFront, as money/dynamodb.py is for DynamoDB.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_cloudfront.client import CloudFrontClient
    from mypy_boto3_s3.client import S3Client

DIGEST_METADATA = "sha256"


class StoreUnavailable(Exception):
    """S3 or CloudFront did not answer as expected."""


class S3CatalogueStore:
    def __init__(
        self,
        bucket: str,
        s3: S3Client,
        cloudfront: CloudFrontClient | None = None,
        distribution_id: str | None = None,
        cache_seconds: int = 60,
    ) -> None:
        self.bucket = bucket
        self.s3 = s3
        self.cloudfront = cloudfront
        self.distribution_id = distribution_id
        self.cache_seconds = cache_seconds

    def stored_digest(self, key: str) -> str | None:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise StoreUnavailable(f"head {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"head {key}: {exc}") from exc
        return head.get("Metadata", {}).get(DIGEST_METADATA)

    def put(self, key: str, content: bytes, content_digest: str) -> None:
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=content,
                ContentType="application/json",
                CacheControl=f"public, max-age={self.cache_seconds}",
                Metadata={DIGEST_METADATA: content_digest},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"put {key}: {exc}") from exc

    def read(self, key: str) -> bytes | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read()
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise StoreUnavailable(f"get {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"get {key}: {exc}") from exc

    def invalidate(self, paths: list[str]) -> str:
        if self.cloudfront is None or not self.distribution_id:
            return "no-distribution"
        try:
            response = self.cloudfront.create_invalidation(
                DistributionId=self.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": paths},
                    "CallerReference": f"games-sync-{time.time_ns()}",
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"invalidate {paths}: {exc}") from exc
        return response["Invalidation"]["Id"]


def _is_missing(exc: ClientError) -> bool:
    # HeadObject answers a bare 404, GetObject NoSuchKey (with s3:ListBucket; without it S3 answers 403 for both).
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")
