# Near-real-time signals for iam-tailor: two EventBridge rules on the default bus forward
# CloudTrail events about the managed roles to the SQS queue iam-tailor-signals. The same as
# signals.cfn.yaml (whose comment lists the limits: rules are regional, IAM's events arrive in
# us-east-1 only, data events only when a trail logs them, best-effort delivery).
# `iam-tailor controller --signal-queue-url <signal_queue_url>` long-polls the queue: an IAM write
# to a managed role or to one of iam-tailor's policies starts a drift check of that role at once;
# an AccessDenied of a managed role's session feeds the automatic restore. The operator's role
# needs sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on the queue.
# The rules' `state` argument needs hashicorp/aws 5.27.0 or later.

variable "role_arn_prefix" {
  description = "ARN prefix of the roles iam-tailor manages in this account, e.g. arn:aws:iam::111122223333:role/"
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]*$", var.role_arn_prefix))
    error_message = "role_arn_prefix must be a role ARN prefix such as arn:aws:iam::111122223333:role/."
  }
}

resource "aws_sqs_queue" "signals" {
  name                      = "iam-tailor-signals"
  message_retention_seconds = 86400
  receive_wait_time_seconds = 20
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue_policy" "signals" {
  queue_url = aws_sqs_queue.signals.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TheTwoRulesOnly"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.signals.arn
      Condition = {
        ArnEquals = {
          "aws:SourceArn" = [
            aws_cloudwatch_event_rule.iam_writes.arn,
            aws_cloudwatch_event_rule.access_denied.arn,
          ]
        }
      }
    }]
  })
}

resource "aws_cloudwatch_event_rule" "iam_writes" {
  name          = "iam-tailor-iam-writes"
  description   = "IAM writes to roles and policies (fires in us-east-1 only)"
  state         = "ENABLED"
  event_pattern = file("${path.module}/signals-iam-writes.pattern.json")
}

# Also read-only calls (state); data events only when a trail logs them.
resource "aws_cloudwatch_event_rule" "access_denied" {
  name          = "iam-tailor-access-denied"
  description   = "AccessDenied of sessions of the managed roles, in any service"
  state         = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
  event_pattern = replace(file("${path.module}/signals-access-denied.pattern.json"), "arn:aws:iam::111122223333:role/", var.role_arn_prefix)
}

resource "aws_cloudwatch_event_target" "iam_writes" {
  rule      = aws_cloudwatch_event_rule.iam_writes.name
  target_id = "iam-tailor-signals"
  arn       = aws_sqs_queue.signals.arn
}

resource "aws_cloudwatch_event_target" "access_denied" {
  rule      = aws_cloudwatch_event_rule.access_denied.name
  target_id = "iam-tailor-signals"
  arn       = aws_sqs_queue.signals.arn
}

output "signal_queue_url" {
  description = "Give this to the operator as iam-tailor controller --signal-queue-url"
  value       = aws_sqs_queue.signals.id
}

output "signal_queue_arn" {
  description = "Grant the operator's role sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on this"
  value       = aws_sqs_queue.signals.arn
}
