//! The HTTP-01 challenges the ACME thread has pending, which the workers answer: a map from
//! token to key authorization, swapped whole by its one writer (the ACME thread) and only
//! read by the workers (one atomic load, no lock).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

/// Where the CA fetches a token's key authorization (RFC 8555, section 8.3).
pub(crate) const CHALLENGE_PREFIX: &[u8] = b"/.well-known/acme-challenge/";

/// The pending HTTP-01 challenges, by token.
#[derive(Default)]
pub(crate) struct Challenges {
    pending: ArcSwap<HashMap<String, Arc<str>>>,
}

impl Challenges {
    /// Answers `token` with `key_authorization` from now on.
    pub(crate) fn add(&self, token: &str, key_authorization: &str) {
        let key_authorization: Arc<str> = Arc::from(key_authorization);
        self.pending.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(token.to_owned(), key_authorization.clone());
            map
        });
    }

    /// Stops answering `token`.
    pub(crate) fn remove(&self, token: &str) {
        self.pending.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.remove(token);
            map
        });
    }

    /// The key authorization of the request path `path`, when it asks for a pending token
    /// (`/.well-known/acme-challenge/<token>`; nothing may follow the token).
    pub(crate) fn answer(&self, path: &[u8]) -> Option<Arc<str>> {
        let token = path.strip_prefix(CHALLENGE_PREFIX)?;
        let token = std::str::from_utf8(token).ok()?;
        let pending = self.pending.load();
        if pending.is_empty() {
            return None;
        }
        pending.get(token).cloned()
    }
}

/// Whether `path` is under the challenge directory (never redirected to HTTPS).
pub(crate) fn is_challenge_path(path: &[u8]) -> bool {
    path.starts_with(CHALLENGE_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_token_is_answered_until_removed() {
        let c = Challenges::default();
        assert!(c.answer(b"/.well-known/acme-challenge/abc").is_none());
        c.add("abc", "abc.thumb");
        c.add("def", "def.thumb");
        assert_eq!(
            c.answer(b"/.well-known/acme-challenge/abc").as_deref(),
            Some("abc.thumb")
        );
        assert!(c.answer(b"/.well-known/acme-challenge/abc/x").is_none());
        assert!(c.answer(b"/.well-known/acme-challenge/").is_none());
        assert!(c.answer(b"/abc").is_none());
        c.remove("abc");
        assert!(c.answer(b"/.well-known/acme-challenge/abc").is_none());
        assert!(c.answer(b"/.well-known/acme-challenge/def").is_some());
    }
}
