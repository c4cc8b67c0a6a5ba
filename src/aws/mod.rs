//! The only place that calls AWS. Everything else works on plain data, so it can be tested
//! without a network and reasoned about without credentials.

pub mod iam;
pub mod s3;

/// An AWS SDK client configuration from the environment (credentials chain, region,
/// `AWS_ENDPOINT_URL`), with `region` overriding the environment's region when given.
pub async fn sdk_config(region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        // CloudTrail buckets answer from any region for listing and reads; pick a default so
        // a missing AWS_REGION is not an error.
        return aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
    }
    config
}
