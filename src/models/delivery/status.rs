//! Where a delivery stands. Stored as text; a text it does not know is an error.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Due now or at its next retry.
    Pending,
    Succeeded,
    /// Every attempt failed (or the endpoint answered 410 Gone).
    Failed,
    /// Waiting for its webhook to be switched back on.
    Parked,
    /// Never to be sent (dropped when its webhook was switched back on).
    Cancelled,
}

/// Outcomes a delivery can have, in the order the log filter offers them.
pub const OUTCOMES: [&str; 5] = ["pending", "succeeded", "failed", "parked", "cancelled"];

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::Parked,
        DeliveryStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Parked => "parked",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    /// Whether it will not be attempted again unless someone resends it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Succeeded | DeliveryStatus::Failed | DeliveryStatus::Cancelled
        )
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        DeliveryStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a delivery outcome (use {}).",
                    OUTCOMES.join(", ")
                )
            })
    }
}

impl TryFrom<String> for DeliveryStatus {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
            .map_err(|_| format!("a delivery has the unknown stored status `{text}`"))
    }
}

impl PartialEq<&str> for DeliveryStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_and_the_filter_offers_each_once() {
        for status in DeliveryStatus::ALL {
            assert_eq!(status.as_str().parse::<DeliveryStatus>(), Ok(status));
        }
        assert_eq!(OUTCOMES, DeliveryStatus::ALL.map(DeliveryStatus::as_str));
        assert!("delivered".parse::<DeliveryStatus>().is_err());
        assert!(
            DeliveryStatus::try_from("bogus".to_owned())
                .unwrap_err()
                .contains("bogus")
        );
    }
}
