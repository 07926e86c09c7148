"""The local stack (dev only, not shipped to Lambda): DynamoDB Local, the table from template.yaml, and an HTTP front
that turns requests into the API Gateway events the Lambda handlers get."""
