//! Token amounts (wei) on the wire: decimal strings, because JSON numbers lose precision
//! above 2^53 in most clients. The contracts cap every amount at 2^128 - 1, so `u128` holds any.

use serde::{Deserialize, Deserializer, Serializer};

/// `#[serde(with = "amount")]` for a `u128` field.
pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_string())
}

/// Accepts a decimal string (or, for hand-written JSON, a small integer).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        String(String),
        Number(u64),
    }
    match Text::deserialize(deserializer)? {
        Text::String(text) => text.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "{text:?} is not an amount in wei (a decimal integer)"
            ))
        }),
        Text::Number(number) => Ok(number.into()),
    }
}

/// `#[serde(default, skip_serializing_if = "Option::is_none", with = "amount::optional")]`
/// for an `Option<u128>` field.
pub mod optional {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<u128>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u128>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}

/// Parses an amount given on the command line or in the environment: wei as an integer,
/// or whole tokens with an `lp` suffix (`2lp` = 2 * 10^18 wei).
pub fn parse(text: &str) -> Result<u128, String> {
    let text = text.trim();
    let (digits, scale) = match text.strip_suffix("lp").or_else(|| text.strip_suffix("LP")) {
        Some(tokens) => (tokens.trim(), 10u128.pow(18)),
        None => (text, 1),
    };
    digits
        .parse::<u128>()
        .ok()
        .and_then(|value| value.checked_mul(scale))
        .ok_or_else(|| {
            format!("{text:?} is not an amount: give wei (e.g. 1000) or tokens (e.g. 2lp)")
        })
}

/// Shows wei as tokens for people: `5000000000000000000` is `5 LP`, `1500000000000000000`
/// is `1.5 LP`; exact (no rounding), trailing zeros dropped.
pub fn display(wei: u128) -> String {
    let scale = 10u128.pow(18);
    let (whole, fraction) = (wei / scale, wei % scale);
    if fraction == 0 {
        return format!("{whole} LP");
    }
    let digits = format!("{fraction:018}");
    format!("{whole}.{} LP", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn displays_tokens_exactly() {
        assert_eq!(super::display(5 * 10u128.pow(18)), "5 LP");
        assert_eq!(super::display(15 * 10u128.pow(17)), "1.5 LP");
        assert_eq!(super::display(1), "0.000000000000000001 LP");
        assert_eq!(super::display(0), "0 LP");
    }

    #[test]
    fn parses_wei_and_tokens() {
        assert_eq!(super::parse("1000"), Ok(1000));
        assert_eq!(super::parse("2lp"), Ok(2_000_000_000_000_000_000));
        assert!(super::parse("-1").is_err());
        assert!(super::parse("1.5lp").is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::{display, parse};

        const LP: u128 = 1_000_000_000_000_000_000;

        proptest! {
            #[test]
            fn wei_reads_back_exactly_and_tokens_scale_or_are_refused(
                wei in any::<u128>(),
                tokens in any::<u128>(),
            ) {
                prop_assert_eq!(parse(&wei.to_string()), Ok(wei));
                prop_assert_eq!(parse(&format!(" {wei} ")), Ok(wei));
                // Whole tokens: exact when they fit, refused (never wrapped) when they do not.
                prop_assert_eq!(parse(&format!("{tokens}lp")).ok(), tokens.checked_mul(LP));
                prop_assert_eq!(parse(&format!("{tokens}LP")).ok(), tokens.checked_mul(LP));
            }

            #[test]
            fn display_is_exact(wei in any::<u128>()) {
                let text = display(wei);
                let number = text.strip_suffix(" LP").expect("ends in LP");
                let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
                prop_assert!(fraction.len() <= 18 && !fraction.ends_with('0'), "{}", text);
                let fraction: u128 = format!("{fraction:0<18}").parse().unwrap();
                let whole: u128 = whole.parse().unwrap();
                prop_assert_eq!(whole * LP + fraction, wei);
            }
        }
    }
}
