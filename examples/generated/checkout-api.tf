# iam-tailor revision sha256:452ea0572b6a1e6eb934570f05d03f1c6c5efb581ee3375ce85d6099d8ae6308
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
      "arn:aws:s3:::checkout-orders/orders/2026/11/20/*",
      "arn:aws:s3:::checkout-orders/orders/2026/11/21/*",
      "arn:aws:s3:::checkout-orders/orders/2026/11/22/*",
    ]
  }

  statement {
    sid       = "S3Write"
    effect    = "Allow"
    actions   = [
      "s3:PutObject",
    ]
    resources = [
      "arn:aws:s3:::checkout-orders/orders/2026/11/20/*",
      "arn:aws:s3:::checkout-orders/orders/2026/11/21/*",
      "arn:aws:s3:::checkout-orders/orders/2026/11/22/*",
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
