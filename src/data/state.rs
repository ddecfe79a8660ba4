//! The deal state machine's states, numbered exactly as `DealState` in
//! `contracts/src/Types.sol` (the chain emits these numbers in `DealStateChange`).

use std::fmt;

/// Where a deal is in its life. The discriminants are the on-chain numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DealState {
    DealNegotiating = 0,
    DealAgreed = 1,
    ResultsSubmitted = 2,
    ResultsAccepted = 3,
    ResultsChecked = 4,
    MediationAccepted = 5,
    MediationRejected = 6,
    TimeoutAgree = 7,
    TimeoutSubmitResults = 8,
    TimeoutJudgeResults = 9,
    TimeoutMediateResults = 10,
}

/// A number that names no deal state (from a newer contract, or corrupt input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown deal state {0}: this node knows states 0 to 10; is the contract newer than the node?"
)]
pub struct UnknownDealState(pub u8);

impl DealState {
    /// Every state, in on-chain order.
    pub const ALL: [DealState; 11] = [
        DealState::DealNegotiating,
        DealState::DealAgreed,
        DealState::ResultsSubmitted,
        DealState::ResultsAccepted,
        DealState::ResultsChecked,
        DealState::MediationAccepted,
        DealState::MediationRejected,
        DealState::TimeoutAgree,
        DealState::TimeoutSubmitResults,
        DealState::TimeoutJudgeResults,
        DealState::TimeoutMediateResults,
    ];

    /// The on-chain number.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The name used on chain and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            DealState::DealNegotiating => "DealNegotiating",
            DealState::DealAgreed => "DealAgreed",
            DealState::ResultsSubmitted => "ResultsSubmitted",
            DealState::ResultsAccepted => "ResultsAccepted",
            DealState::ResultsChecked => "ResultsChecked",
            DealState::MediationAccepted => "MediationAccepted",
            DealState::MediationRejected => "MediationRejected",
            DealState::TimeoutAgree => "TimeoutAgree",
            DealState::TimeoutSubmitResults => "TimeoutSubmitResults",
            DealState::TimeoutJudgeResults => "TimeoutJudgeResults",
            DealState::TimeoutMediateResults => "TimeoutMediateResults",
        }
    }

    /// Whether the deal can still change: every state but these three is final.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            DealState::DealNegotiating
                | DealState::DealAgreed
                | DealState::ResultsSubmitted
                | DealState::ResultsChecked
        )
    }

    /// Whether the deal is over (no transition leaves it).
    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }

    /// Whether the job ran and its results were accepted (by the JC or a mediator).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            DealState::ResultsAccepted | DealState::MediationAccepted
        )
    }
}

impl TryFrom<u8> for DealState {
    type Error = UnknownDealState;

    fn try_from(number: u8) -> Result<Self, Self::Error> {
        DealState::ALL
            .get(usize::from(number))
            .copied()
            .ok_or(UnknownDealState(number))
    }
}

impl fmt::Display for DealState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for (index, state) in DealState::ALL.iter().enumerate() {
            assert_eq!(usize::from(state.number()), index);
            assert_eq!(DealState::try_from(state.number()), Ok(*state));
        }
    }

    #[test]
    fn unknown_numbers_are_errors_not_panics() {
        for number in 11..=u8::MAX {
            assert_eq!(DealState::try_from(number), Err(UnknownDealState(number)));
        }
        assert!(UnknownDealState(11)
            .to_string()
            .contains("unknown deal state 11"));
    }

    #[test]
    fn terminal_states_are_the_seven_final_ones() {
        let terminal: Vec<u8> = DealState::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.number())
            .collect();
        assert_eq!(terminal, vec![3, 5, 6, 7, 8, 9, 10]);
        let success: Vec<u8> = DealState::ALL
            .iter()
            .filter(|s| s.is_success())
            .map(|s| s.number())
            .collect();
        assert_eq!(success, vec![3, 5]);
    }
}
