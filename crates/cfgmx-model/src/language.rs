//! The source languages cfgmx drives, a leaf that descriptors, drivers, MPI data and
//! profiles all name.

use serde::{Deserialize, Serialize};

/// A source language cfgmx knows how to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    C,
    Cxx,
    Fortran,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::C, Language::Cxx, Language::Fortran];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::C => "c",
            Language::Cxx => "cxx",
            Language::Fortran => "fortran",
        }
    }
}
