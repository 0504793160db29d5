//! Accounts: who can log in, keyed by id and by normalised email.

use serde::{Deserialize, Serialize};

use redb::ReadableTable;

use super::{decode, encode, Meta, MetaResult, ACCOUNTS, EMAILS};

/// A registered account. `password_hash` is a PHC-like PBKDF2 string, never the password.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    /// µs since the epoch.
    pub created_at: i64,
}

impl Meta {
    /// Stores a new account. Returns false (and stores nothing) when the email is taken.
    pub fn create_account(&self, a: &Account) -> MetaResult<bool> {
        let tx = self.db().begin_write()?;
        {
            let mut emails = tx.open_table(EMAILS)?;
            let key = a.email.to_lowercase();
            if emails.get(key.as_str())?.is_some() {
                return Ok(false);
            }
            emails.insert(key.as_str(), a.id.as_str())?;
            tx.open_table(ACCOUNTS)?
                .insert(a.id.as_str(), encode(a).as_slice())?;
        }
        tx.commit()?;
        Ok(true)
    }

    pub fn account(&self, id: &str) -> MetaResult<Option<Account>> {
        let rtx = self.db().begin_read()?;
        let t = rtx.open_table(ACCOUNTS)?;
        let Some(v) = t.get(id)? else {
            return Ok(None);
        };
        Ok(Some(decode("accounts", id, v.value())?))
    }

    /// The account registered with this email, in any case (the table's keys are lower-case).
    pub fn account_by_email(&self, email: &str) -> MetaResult<Option<Account>> {
        let id = {
            let rtx = self.db().begin_read()?;
            let t = rtx.open_table(EMAILS)?;
            let Some(v) = t.get(email.to_lowercase().as_str())? else {
                return Ok(None);
            };
            v.value().to_owned()
        };
        self.account(&id)
    }
}
