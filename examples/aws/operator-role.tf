# The iam-tailor operator's own IAM role, for IRSA (EKS IAM roles for service accounts).
# The permissions come from operator-policy.json with the account and trail bucket filled in.
# Roles iam-tailor may change must carry the tag iam-tailor.dev/managed-role=true.

variable "oidc_provider" {
  description = "The cluster's OIDC provider without https://"
  type        = string
}

variable "trail_bucket" {
  description = "The bucket CloudTrail writes to (logs under AWSLogs/)"
  type        = string
}

variable "namespace" {
  type    = string
  default = "iam-tailor"
}

variable "service_account" {
  type    = string
  default = "iam-tailor"
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

resource "aws_iam_role" "iam_tailor" {
  name = "iam-tailor-operator"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/${var.oidc_provider}" }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${var.oidc_provider}:sub" = "system:serviceaccount:${var.namespace}:${var.service_account}"
          "${var.oidc_provider}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
}

resource "aws_iam_role_policy" "iam_tailor" {
  name = "iam-tailor-operator"
  role = aws_iam_role.iam_tailor.id
  policy = replace(
    replace(file("${path.module}/operator-policy.json"), "111122223333", data.aws_caller_identity.current.account_id),
    "org-trail-logs",
    var.trail_bucket
  )
}

output "role_arn" {
  description = "Put this in the chart's serviceAccount.annotations.\"eks.amazonaws.com/role-arn\""
  value       = aws_iam_role.iam_tailor.arn
}
