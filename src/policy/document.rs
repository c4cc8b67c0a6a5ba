//! The policy document model and its parser.
//!
//! The parser accepts every form IAM accepts (statement as object or array, single strings or
//! arrays, both versions, every principal form, every condition operator) and rejects the
//! structural errors IAM rejects, naming the JSON path (`Statement[2].Condition.StringEquals`)
//! and what was expected there. Rules that depend on the kind of policy (an identity policy needs
//! `Resource`, a trust policy needs `Principal`, IAM wants Version 2012-10-17) belong to the
//! linter, which runs on this model.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A parsed IAM policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `None` when the document has no `Version`: IAM then applies 2008-10-17 rules.
    pub version: Option<Version>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V2008_10_17,
    V2012_10_17,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2008_10_17 => "2008-10-17",
            Version::V2012_10_17 => "2012-10-17",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<PrincipalBlock>,
    /// `None` only in documents the linter will reject; the evaluator treats it as matching nothing.
    pub action: Option<ActionBlock>,
    /// `None` in trust policies, where the resource is implicitly the role itself.
    pub resource: Option<ResourceBlock>,
    /// Conditions, ANDed together, in document order.
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// `Action` (the listed patterns) or `NotAction` (everything but them).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionBlock {
    Action(Vec<String>),
    NotAction(Vec<String>),
}

/// `Resource` (the listed ARN patterns) or `NotResource` (everything but them).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceBlock {
    Resource(Vec<String>),
    NotResource(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrincipalBlock {
    Principal(Principals),
    NotPrincipal(Principals),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principals {
    /// `"Principal": "*"`: everyone, including anonymous callers.
    Any,
    /// `{"AWS": [...], "Service": [...], ...}`.
    Specific(BTreeMap<PrincipalType, Vec<String>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrincipalType {
    Aws,
    CanonicalUser,
    Federated,
    Service,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Aws => "AWS",
            PrincipalType::CanonicalUser => "CanonicalUser",
            PrincipalType::Federated => "Federated",
            PrincipalType::Service => "Service",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "AWS" => PrincipalType::Aws,
            "CanonicalUser" => PrincipalType::CanonicalUser,
            "Federated" => PrincipalType::Federated,
            "Service" => PrincipalType::Service,
            _ => return None,
        })
    }
}

/// One `operator: {key: values}` test; a statement's conditions are all ANDed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Condition {
    pub operator: ConditionOperator,
    pub key: String,
    /// Values as written; JSON booleans and numbers are kept as their text (`true`, `3`).
    pub values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConditionOperator {
    pub set: Option<SetQualifier>,
    pub base: BaseOperator,
    /// `…IfExists`: a missing key makes the condition true.
    pub if_exists: bool,
}

/// `ForAllValues:` / `ForAnyValue:` for multi-valued context keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetQualifier {
    ForAllValues,
    ForAnyValue,
}

macro_rules! base_operators {
    ($($name:ident),* $(,)?) => {
        /// The condition operator without its set qualifier and `IfExists` suffix.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum BaseOperator { $($name),* }

        impl BaseOperator {
            pub const ALL: &'static [BaseOperator] = &[$(BaseOperator::$name),*];

            pub fn as_str(self) -> &'static str {
                match self { $(BaseOperator::$name => stringify!($name)),* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $(stringify!($name) => Some(BaseOperator::$name),)* _ => None }
            }
        }
    };
}

base_operators!(
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
);

impl BaseOperator {
    /// Negated operators (`StringNotEquals`, `NotIpAddress`, …) are true when the key is missing.
    pub fn is_negated(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    pub fn is_date(self) -> bool {
        self.as_str().starts_with("Date")
    }
}

impl ConditionOperator {
    /// Parses `ForAnyValue:StringLikeIfExists` and friends; `None` for an unknown operator.
    pub fn parse(s: &str) -> Option<Self> {
        let (set, rest) = if let Some(r) = s.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else if let Some(r) = s.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else {
            (None, s)
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let base = BaseOperator::parse(base)?;
        // `Null` tests existence itself, so `NullIfExists` means nothing and IAM rejects it.
        if base == BaseOperator::Null && if_exists {
            return None;
        }
        Some(ConditionOperator {
            set,
            base,
            if_exists,
        })
    }
}

impl fmt::Display for ConditionOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.set {
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            None => {}
        }
        f.write_str(self.base.as_str())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

/// A document IAM would refuse, with the JSON path of the offending element.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct ParseError {
    /// `Statement[2].Condition.StringEquals`; empty for the document itself.
    pub path: String,
    pub message: String,
}

fn err<T>(path: &str, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        path: path.to_string(),
        message: message.into(),
    })
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Policy {
    /// Parses a policy from JSON text.
    pub fn parse(text: &str) -> Result<Policy, ParseError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ParseError {
            path: String::new(),
            message: format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        })?;
        Policy::from_value(&value)
    }

    /// Parses a policy from an already-decoded JSON value.
    pub fn from_value(value: &Value) -> Result<Policy, ParseError> {
        let Value::Object(doc) = value else {
            return err(
                "",
                format!("expected a JSON object, found {}", type_name(value)),
            );
        };
        for key in doc.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return err(
                    key,
                    "unknown element; a policy has only Version, Id and Statement",
                );
            }
        }
        let version = match doc.get("Version") {
            None => None,
            Some(Value::String(s)) if s == "2012-10-17" => Some(Version::V2012_10_17),
            Some(Value::String(s)) if s == "2008-10-17" => Some(Version::V2008_10_17),
            Some(other) => {
                return err(
                    "Version",
                    format!(
                        "expected \"2012-10-17\" or \"2008-10-17\", found {}",
                        describe(other)
                    ),
                );
            }
        };
        let id = match doc.get("Id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return err(
                    "Id",
                    format!("expected a string, found {}", type_name(other)),
                );
            }
        };
        let statements = match doc.get("Statement") {
            None => return err("Statement", "required element is missing"),
            Some(Value::Object(s)) => vec![parse_statement(s, "Statement")?],
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    return err("Statement", "expected at least one statement, found []");
                }
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let path = format!("Statement[{i}]");
                    let Value::Object(s) = item else {
                        return err(
                            &path,
                            format!("expected a statement object, found {}", type_name(item)),
                        );
                    };
                    out.push(parse_statement(s, &path)?);
                }
                out
            }
            Some(other) => {
                return err(
                    "Statement",
                    format!(
                        "expected a statement object or an array of them, found {}",
                        type_name(other)
                    ),
                );
            }
        };
        Ok(Policy {
            version,
            id,
            statements,
        })
    }

    /// Policy variables (`${aws:username}`) are only substituted under Version 2012-10-17.
    pub fn substitutes_variables(&self) -> bool {
        self.version == Some(Version::V2012_10_17)
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        other => type_name(other).to_string(),
    }
}

fn parse_statement(s: &Map<String, Value>, path: &str) -> Result<Statement, ParseError> {
    for key in s.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return err(
                &join(path, key),
                "unknown element; a statement has Sid, Effect, Principal/NotPrincipal, \
                 Action/NotAction, Resource/NotResource and Condition",
            );
        }
    }
    let sid = match s.get("Sid") {
        None => None,
        Some(Value::String(v)) => Some(v.clone()),
        Some(other) => {
            return err(
                &join(path, "Sid"),
                format!("expected a string, found {}", type_name(other)),
            );
        }
    };
    let effect = match s.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            return err(
                &join(path, "Effect"),
                format!(
                    "expected \"Allow\" or \"Deny\" (case-sensitive), found {}",
                    describe(other)
                ),
            );
        }
        None => return err(&join(path, "Effect"), "required element is missing"),
    };
    let principal = match exclusive(s, path, "Principal", "NotPrincipal")? {
        None => None,
        Some((true, v)) => Some(PrincipalBlock::Principal(parse_principals(
            v,
            &join(path, "Principal"),
        )?)),
        Some((false, v)) => Some(PrincipalBlock::NotPrincipal(parse_principals(
            v,
            &join(path, "NotPrincipal"),
        )?)),
    };
    let action = match exclusive(s, path, "Action", "NotAction")? {
        None => None,
        Some((true, v)) => Some(ActionBlock::Action(string_list(v, &join(path, "Action"))?)),
        Some((false, v)) => Some(ActionBlock::NotAction(string_list(
            v,
            &join(path, "NotAction"),
        )?)),
    };
    let resource = match exclusive(s, path, "Resource", "NotResource")? {
        None => None,
        Some((true, v)) => Some(ResourceBlock::Resource(string_list(
            v,
            &join(path, "Resource"),
        )?)),
        Some((false, v)) => Some(ResourceBlock::NotResource(string_list(
            v,
            &join(path, "NotResource"),
        )?)),
    };
    let conditions = match s.get("Condition") {
        None => Vec::new(),
        Some(v) => parse_conditions(v, &join(path, "Condition"))?,
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// Returns which of two mutually exclusive elements is present (`true` for the first).
fn exclusive<'a>(
    s: &'a Map<String, Value>,
    path: &str,
    yes: &str,
    not: &str,
) -> Result<Option<(bool, &'a Value)>, ParseError> {
    match (s.get(yes), s.get(not)) {
        (Some(_), Some(_)) => err(
            &join(path, not),
            format!("a statement may have {yes} or {not}, not both"),
        ),
        (Some(v), None) => Ok(Some((true, v))),
        (None, Some(v)) => Ok(Some((false, v))),
        (None, None) => Ok(None),
    }
}

/// A string or an array of strings; `null` array members are ignored, as IAM does.
fn string_list(v: &Value, path: &str) -> Result<Vec<String>, ParseError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    Value::Null => {}
                    other => {
                        return err(
                            &format!("{path}[{i}]"),
                            format!("expected a string, found {}", type_name(other)),
                        );
                    }
                }
            }
            Ok(out)
        }
        other => err(
            path,
            format!(
                "expected a string or an array of strings, found {}",
                type_name(other)
            ),
        ),
    }
}

fn parse_principals(v: &Value, path: &str) -> Result<Principals, ParseError> {
    match v {
        Value::String(s) if s == "*" => Ok(Principals::Any),
        Value::Object(map) => {
            let mut out = BTreeMap::new();
            for (k, v) in map {
                let Some(kind) = PrincipalType::parse(k) else {
                    return err(
                        &join(path, k),
                        "unknown principal type; expected AWS, Service, Federated or CanonicalUser",
                    );
                };
                out.insert(kind, string_list(v, &join(path, k))?);
            }
            Ok(Principals::Specific(out))
        }
        other => err(
            path,
            format!(
                "expected \"*\" or an object such as {{\"AWS\": [...]}}, found {}",
                describe(other)
            ),
        ),
    }
}

fn parse_conditions(v: &Value, path: &str) -> Result<Vec<Condition>, ParseError> {
    let Value::Object(ops) = v else {
        return err(
            path,
            format!(
                "expected an object of condition operators, found {}",
                type_name(v)
            ),
        );
    };
    let mut out = Vec::new();
    for (op_name, block) in ops {
        let op_path = join(path, op_name);
        let Value::Object(keys) = block else {
            return err(
                &op_path,
                format!(
                    "expected an object of condition keys, found {}",
                    type_name(block)
                ),
            );
        };
        let Some(operator) = ConditionOperator::parse(op_name) else {
            // IAM tolerates an unknown operator only when it tests nothing.
            if keys.is_empty() {
                continue;
            }
            return err(&op_path, "unknown condition operator");
        };
        for (key, values) in keys {
            let key_path = join(&op_path, key);
            let values = condition_values(values, &key_path)?;
            if operator.base.is_date() {
                for (i, value) in values.iter().enumerate() {
                    if crate::time::parse_date(value).is_none() {
                        return err(
                            &format!("{key_path}[{i}]"),
                            format!("\"{value}\" is not an ISO 8601 date-time or epoch seconds"),
                        );
                    }
                }
            }
            out.push(Condition {
                operator,
                key: key.clone(),
                values,
            });
        }
    }
    Ok(out)
}

/// Condition values: a scalar or an array of scalars; booleans and numbers keep their text.
fn condition_values(v: &Value, path: &str) -> Result<Vec<String>, ParseError> {
    fn scalar(v: &Value, path: &str) -> Result<Option<String>, ParseError> {
        match v {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Null => Ok(None),
            other => err(
                path,
                format!(
                    "expected a string, number or boolean, found {}",
                    type_name(other)
                ),
            ),
        }
    }
    match v {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(s) = scalar(item, &format!("{path}[{i}]"))? {
                    out.push(s);
                }
            }
            Ok(out)
        }
        other => Ok(scalar(other, path)?.into_iter().collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_object_and_array_are_the_same_policy() {
        let a = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        )
        .unwrap();
        let b = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["*"]}]}"#,
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn errors_name_the_path() {
        let e = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
            {"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
            {"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":"x"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.path, "Statement[2].Condition.StringEquals");
        assert!(e.message.contains("expected an object"), "{e}");

        let e = Policy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"allow"}}"#)
            .unwrap_err();
        assert_eq!(e.path, "Statement.Effect");

        let e = Policy::parse("{\"Version\": \n 3").unwrap_err();
        assert!(e.message.contains("line 2"), "{e}");
    }

    #[test]
    fn operators_parse_with_qualifiers_and_suffix() {
        let op = ConditionOperator::parse("ForAnyValue:StringLikeIfExists").unwrap();
        assert_eq!(op.set, Some(SetQualifier::ForAnyValue));
        assert_eq!(op.base, BaseOperator::StringLike);
        assert!(op.if_exists);
        assert_eq!(op.to_string(), "ForAnyValue:StringLikeIfExists");
        assert!(ConditionOperator::parse("ForAnyValue::StringEquals").is_none());
        assert!(ConditionOperator::parse("NullIfExists").is_none());
        assert!(ConditionOperator::parse("StringEqualz").is_none());
    }

    #[test]
    fn principals_and_values() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root","Service":["ec2.amazonaws.com"]},
            "Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":true},"NumericLessThan":{"aws:MultiFactorAuthAge":3600}}}}"#,
        )
        .unwrap();
        let st = &p.statements[0];
        let Some(PrincipalBlock::Principal(Principals::Specific(m))) = &st.principal else {
            panic!("expected specific principals")
        };
        assert_eq!(m[&PrincipalType::Service], vec!["ec2.amazonaws.com"]);
        assert_eq!(st.conditions[0].values, vec!["true"]);
        assert_eq!(st.conditions[1].values, vec!["3600"]);
        assert!(st.resource.is_none());
    }
}
