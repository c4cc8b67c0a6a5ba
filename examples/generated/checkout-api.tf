# iam-tailor revision sha256:16731b9841427788b35a4d12aecc0ee57cdc9b694193edc3bf0b8c38ed66395f
data "aws_iam_policy_document" "iam_tailor" {
  version = "2012-10-17"

  statement {
    sid       = "S3List"
    effect    = "Allow"
    actions   = [
      "s3:ListBucket",
    ]
    resources = [
      "arn:aws:s3:::checkout-orders",
    ]
  }

  statement {
    sid       = "S3Read"
    effect    = "Allow"
    actions   = [
      "s3:GetObject",
    ]
    resources = [
      "arn:aws:s3:::checkout-orders/orders/*",
    ]
  }

  statement {
    sid       = "S3Write"
    effect    = "Allow"
    actions   = [
      "s3:PutObject",
    ]
    resources = [
      "arn:aws:s3:::checkout-orders/orders/*",
    ]
  }

  statement {
    sid       = "SqsWrite"
    effect    = "Allow"
    actions   = [
      "sqs:SendMessage",
    ]
    resources = [
      "arn:aws:sqs:us-east-1:111122223333:checkout-events",
    ]
  }
}
