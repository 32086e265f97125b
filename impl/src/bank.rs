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

    pub fn apply_transfer(&mut self, t: &Transfer) {
        self.post(&Posting {
            account: t.from,
            delta: -t.amount,
        });
        self.post(&Posting {
            account: t.to,
            delta: t.amount,
        });
    }

    pub fn post(&mut self, p: &Posting) {
        let balance = self.balances.entry(p.account).or_insert(0);
        *balance = balance
            .checked_add(p.delta)
            .expect("balance overflow: amounts are bounded by the workload");
    }

    pub fn balance(&self, account: AccountId) -> Amount {
        self.balances.get(&account).copied().unwrap_or(0)
    }

    /// The sum of all balances: zero after any set of whole transfers.
    pub fn total(&self) -> Amount {
        self.balances.values().sum()
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
        });
        bank.apply_transfer(&Transfer {
            from: 2,
            to: 3,
            amount: 10,
        });
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
        });
        assert_eq!(bank.total(), 5);
    }
}
