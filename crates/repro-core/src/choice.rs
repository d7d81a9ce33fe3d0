//! Closed sets of named values written in `pipeline.yaml` (dataset formats, architectures,
//! optimizer variants, …): [`choice!`] defines each once, so its serde names, its list of valid
//! names and its parse errors cannot drift apart.

/// Defines a closed set of named values once: a serde enum whose wire names are the
/// pipeline's strings, its `NAMES` (what `ParamType::Choice` lists, so the schema cannot drift
/// from the type), `ALL`, `name()` and `parse()`.
macro_rules! choice {
    ($(#[$m:meta])* $vis:vis enum $name:ident ($what:literal) {
        $($(#[$vm:meta])* $var:ident = $wire:literal),+ $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $($(#[$vm])* #[serde(rename = $wire)] $var),+
        }

        impl $name {
            /// The wire names, in declaration order (a `ParamType::Choice` list).
            pub const NAMES: &'static [&'static str] = &[$($wire),+];
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($wire),+].len()] = [$($name::$var),+];

            /// The wire name.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$var => $wire),+
                }
            }

            /// The value of a wire name; the error lists the valid ones.
            pub fn parse(s: &str) -> Result<$name, $crate::choice::UnknownChoice> {
                $name::ALL
                    .into_iter()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| $crate::choice::UnknownChoice {
                        what: $what,
                        given: s.to_string(),
                        valid: $name::NAMES,
                    })
            }
        }
    };
}
pub(crate) use choice;

/// A string that names none of a choice's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownChoice {
    pub what: &'static str,
    pub given: String,
    pub valid: &'static [&'static str],
}

impl std::fmt::Display for UnknownChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown {} {:?}; valid values: {}",
            self.what,
            self.given,
            self.valid.join(", ")
        )
    }
}

impl std::error::Error for UnknownChoice {}
