//! The application that exactly-once protects: a small bank ledger.
//!
//! It is deliberately obvious so that end-to-end checks are too: a balance is the
//! sum of the unique transfers applied to it, and a transfer split across the
//! participants of a two-phase commit (a debit at one, a credit at another)
//! conserves money only if it commits at all of them or at none.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type AccountId = u32;

/// Money in the smallest unit. Signed: balances may go negative; the bank checks
/// conservation, not credit.
pub type Amount = i64;

/// Largest magnitude of any balance: every balance stays within
/// `[-BALANCE_MAX, BALANCE_MAX]`, so the bank never overflows and [`Bank::post`]
/// refuses, with a typed error, a posting that would leave the range. Protocols
/// check this before they promise anything (a two-phase-commit participant votes
/// no on a posting that could take a balance beyond it, counting every staged
/// posting), so the refusal is a last line of defence, not a protocol step.
pub const BALANCE_MAX: Amount = 1_000_000_000_000_000_000;

/// A posting or transfer that would take a balance beyond [`BALANCE_MAX`]; the
/// bank is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "account {account}: balance {balance} + {delta} would leave [-{BALANCE_MAX}, {BALANCE_MAX}]"
)]
pub struct BalanceOutOfRange {
    pub account: AccountId,
    pub balance: Amount,
    pub delta: Amount,
}

/// Moves `amount` from one account to another within one bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transfer {
    pub from: AccountId,
    pub to: AccountId,
    pub amount: Amount,
}

/// One side of a transfer that spans banks: `delta` is added to `account`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Posting {
    pub account: AccountId,
    pub delta: Amount,
}

/// Account balances. Accounts come into being at zero when first touched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bank {
    balances: BTreeMap<AccountId, Amount>,
}

impl Bank {
    pub fn new() -> Bank {
        Bank::default()
    }

    /// Applies both sides of `t`, or neither if either would leave the range.
    pub fn apply_transfer(&mut self, t: &Transfer) -> Result<(), BalanceOutOfRange> {
        let debit = Posting {
            account: t.from,
            delta: t.amount.checked_neg().ok_or(BalanceOutOfRange {
                account: t.from,
                balance: self.balance(t.from),
                delta: t.amount,
            })?,
        };
        self.post(&debit)?;
        let credit = Posting {
            account: t.to,
            delta: t.amount,
        };
        if let Err(e) = self.post(&credit) {
            // Undo the debit: it was in range before, so it is again.
            let undo = Posting {
                account: t.from,
                delta: t.amount,
            };
            self.post(&undo)
                .expect("undoing a debit restores an in-range balance");
            return Err(e);
        }
        Ok(())
    }

    /// Adds `p.delta` to its account, unless the balance would leave
    /// `[-BALANCE_MAX, BALANCE_MAX]` (then the bank is unchanged).
    pub fn post(&mut self, p: &Posting) -> Result<(), BalanceOutOfRange> {
        let balance = self.balance(p.account);
        let out = BalanceOutOfRange {
            account: p.account,
            balance,
            delta: p.delta,
        };
        let new = balance.checked_add(p.delta).ok_or(out)?;
        if !Bank::in_range(new) {
            return Err(out);
        }
        self.balances.insert(p.account, new);
        Ok(())
    }

    /// Whether `balance` is within `[-BALANCE_MAX, BALANCE_MAX]`.
    pub fn in_range(balance: Amount) -> bool {
        (-BALANCE_MAX..=BALANCE_MAX).contains(&balance)
    }

    /// Whether every balance is within range (a bank read back from a log).
    pub fn is_well_formed(&self) -> bool {
        self.balances.values().all(|b| Bank::in_range(*b))
    }

    pub fn balance(&self, account: AccountId) -> Amount {
        self.balances.get(&account).copied().unwrap_or(0)
    }

    /// The sum of all balances: zero after any set of whole transfers. Wide, so
    /// it cannot overflow whatever the balances.
    pub fn total(&self) -> i128 {
        self.balances.values().map(|b| i128::from(*b)).sum()
    }

    pub fn balances(&self) -> &BTreeMap<AccountId, Amount> {
        &self.balances
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_moves_money_and_conserves_it() {
        let mut bank = Bank::new();
        bank.apply_transfer(&Transfer {
            from: 1,
            to: 2,
            amount: 30,
        })
        .unwrap();
        bank.apply_transfer(&Transfer {
            from: 2,
            to: 3,
            amount: 10,
        })
        .unwrap();
        assert_eq!(
            (bank.balance(1), bank.balance(2), bank.balance(3)),
            (-30, 20, 10)
        );
        assert_eq!(bank.total(), 0);
    }

    #[test]
    fn a_lone_posting_breaks_conservation() {
        let mut bank = Bank::new();
        bank.post(&Posting {
            account: 7,
            delta: 5,
        })
        .unwrap();
        assert_eq!(bank.total(), 5);
    }

    #[test]
    fn balances_beyond_the_bound_are_refused_and_change_nothing() {
        let mut bank = Bank::new();
        let big = Posting {
            account: 1,
            delta: BALANCE_MAX,
        };
        bank.post(&big).unwrap();
        assert!(bank.post(&big).is_err());
        assert!(bank
            .post(&Posting {
                account: 1,
                delta: i64::MAX
            })
            .is_err());
        let t = Transfer {
            from: 2,
            to: 1,
            amount: 1,
        };
        assert!(bank.apply_transfer(&t).is_err());
        assert_eq!((bank.balance(1), bank.balance(2)), (BALANCE_MAX, 0));
        let t = Transfer {
            from: 2,
            to: 3,
            amount: i64::MIN,
        };
        assert!(bank.apply_transfer(&t).is_err());
        // `total` is wide: two balances near the limits of `i64` still add up.
        let huge: BTreeMap<AccountId, Amount> = [(1, i64::MAX), (2, i64::MAX)].into();
        let bank = Bank { balances: huge };
        assert!(!bank.is_well_formed());
        assert_eq!(bank.total(), 2 * i128::from(i64::MAX));
    }
}
