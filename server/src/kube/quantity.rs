//! Kubernetes resource quantities (`500m`, `4Gi`, `1.5`, `2e3`): checked to
//! the apiserver's own grammar before anything is sent, and turned into numbers
//! so usage bars can compare `used` with `hard`.

/// Why a quantity was refused, in words for the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not a quantity at all.
    #[error("Enter a number with an optional unit, like 500m, 2, 512Mi or 4Gi.")]
    Syntax,
    /// Quotas and defaults are never negative.
    #[error("Enter zero or more, not a negative amount.")]
    Negative,
    /// Counts (pods, services) are whole numbers.
    #[error("Enter a whole number, like 10.")]
    NotWhole,
}

/// Parses a quantity to its value in base units (cores, bytes, objects).
///
/// Grammar (from `k8s.io/apimachinery/pkg/api/resource`):
/// `[+-]number(suffix)` with number `digits`, `digits.digits`, `digits.` or
/// `.digits`; suffix a binary SI (`Ki`..`Ei`), decimal SI (`n u m k M G T P E`)
/// or a decimal exponent (`e`/`E` and a signed integer).
pub fn parse(text: &str) -> Result<f64, QuantityError> {
    let text = text.trim();
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'-') => (-1.0, &text[1..]),
        Some(b'+') => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    if !valid_number(number) {
        return Err(QuantityError::Syntax);
    }
    let value: f64 = number.parse().map_err(|_| QuantityError::Syntax)?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent if exponent.starts_with(['e', 'E']) => {
            let digits = &exponent[1..];
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QuantityError::Syntax);
            }
            let power: i32 = digits.parse().map_err(|_| QuantityError::Syntax)?;
            10f64.powi(power)
        }
        _ => return Err(QuantityError::Syntax),
    };
    Ok(sign * value * multiplier)
}

fn valid_number(number: &str) -> bool {
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    match parts.next() {
        None => !whole.is_empty(),
        Some(fraction) => {
            !fraction.contains('.')
                && (!whole.is_empty() || !fraction.is_empty())
                && (whole.len() + fraction.len()) > 0
        }
    }
}

/// A quantity for a quota or default: valid and not negative.
pub fn amount(text: &str) -> Result<f64, QuantityError> {
    let value = parse(text)?;
    if value < 0.0 {
        return Err(QuantityError::Negative);
    }
    Ok(value)
}

/// A count of objects (pods, load balancers, claims): a plain whole number.
pub fn count(text: &str) -> Result<u64, QuantityError> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(QuantityError::Negative);
    }
    text.parse::<u64>().map_err(|_| QuantityError::NotWhole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_kubernetes_accepts() {
        let cases = [
            ("1", 1.0),
            ("500m", 0.5),
            ("1.5", 1.5),
            (".5", 0.5),
            ("2.", 2.0),
            ("4Gi", 4.0 * 1024.0 * 1024.0 * 1024.0),
            ("512Mi", 512.0 * 1024.0 * 1024.0),
            ("1k", 1000.0),
            ("2e3", 2000.0),
            ("1E-3", 0.001),
            ("+3", 3.0),
            ("0", 0.0),
        ];
        for (text, expected) in cases {
            let value = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!((value - expected).abs() < 1e-9, "{text} = {value}");
        }
    }

    #[test]
    fn refuses_what_kubernetes_refuses() {
        for text in [
            "", "Gi", "1 Gi", "1gi", "1GB", "1.2.3", ".", "e3", "1e", "1e+", "abc", "1Kii", "--1",
        ] {
            assert_eq!(parse(text), Err(QuantityError::Syntax), "{text:?}");
        }
    }

    #[test]
    fn amounts_are_not_negative_and_counts_are_whole() {
        assert_eq!(amount("-1"), Err(QuantityError::Negative));
        assert_eq!(count("10"), Ok(10));
        assert_eq!(count("1.5"), Err(QuantityError::NotWhole));
        assert_eq!(count("1k"), Err(QuantityError::NotWhole));
        assert_eq!(count("-2"), Err(QuantityError::Negative));
    }
}
