//! What the container requests of `Admin` answer, in a domain type: a
//! container and the conflict policy it was created with.

/// A container as the meta group holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    /// `lww`, `lww:/path`, `custom`, `counter`, `set` or `register`, as
    /// the server spelled it (a newer server may know more).
    pub policy: String,
    /// Losers of an lww conflict go to the conflict feed (false after
    /// `--no-feed-for-lww`).
    pub feed_for_lww: bool,
}

impl Container {
    /// The policy as `meridian container create` takes it, flag included:
    /// `lww:/priority --no-feed-for-lww`.
    pub fn policy_text(&self) -> String {
        if self.feed_for_lww {
            self.policy.clone()
        } else {
            format!("{} --no-feed-for-lww", self.policy)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_text_carries_the_feed_flag() {
        let mut c = Container {
            name: "jobs".into(),
            policy: "lww:/priority".into(),
            feed_for_lww: true,
        };
        assert_eq!(c.policy_text(), "lww:/priority");
        c.feed_for_lww = false;
        assert_eq!(c.policy_text(), "lww:/priority --no-feed-for-lww");
        assert_eq!(
            c.policy_text()
                .parse::<crate::container::ContainerPolicy>()
                .map(|p| p.to_string()),
            Ok(c.policy_text()),
            "the text form is the one container.rs parses"
        );
    }
}
