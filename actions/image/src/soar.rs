//! Splunk SOAR Docker app compatibility: its image action names, parameter names and output
//! data paths, mapped onto the canonical actions.

use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::soar::{counted, summary_text, wrap};
use berth_sdk::typed::Filters;

params! {
    struct SoarList {
        all: bool => "",
        filters: Option<Filters> => "",
        digests: bool => "",
    }
}

params! {
    struct SoarName {
        name: String => "Image Name or ID",
    }
}

params! {
    struct SoarRemove {
        name: String => "Image Name or ID",
        force: bool => "",
        noprune: bool => "",
    }
}

params! {
    struct SoarBuildPrune {
        keep_storage: i64 = 0 => "",
        all: bool => "",
        filters: Option<Filters> => "",
    }
}

pub fn actions() -> Vec<Action> {
    vec![
        Action::new("list images", "Get a list of images (Splunk SOAR)")
            .read_only()
            .output(&["data.*.images.*.Id", "data.*.images.*.RepoTags", "data.*.images.*.Created", "data.*.images.*.Size", "summary.total_objects"])
            .ops(&["ImageList"])
            .typed(|p: SoarList| {
                Ok(wrap("images", crate::list(crate::List { all: p.all, filters: p.filters, digests: p.digests, shared_size: None, manifests: None })?))
            }),
        Action::new("remove image", "Remove an image (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data", "summary.total_objects"])
            .ops(&["ImageDelete"])
            .typed(|p: SoarRemove| counted(crate::remove(crate::Remove { name: p.name, force: p.force, noprune: p.noprune })?)),
        Action::new("delete unused images", "Delete unused images (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data", "summary.total_objects"])
            .ops(&["ImagePrune"])
            .typed(crate::prune),
        Action::new("get image history", "Get the parent layers of an image (Splunk SOAR)")
            .read_only()
            .output(&[
                "data.*.history.*.Id",
                "data.*.history.*.Tags",
                "data.*.history.*.CreatedBy",
                "data.*.history.*.Created",
                "data.*.history.*.Size",
                "data.*.history.*.Comment",
                "summary.history_data",
                "summary.total_objects",
            ])
            .ops(&["ImageHistory"])
            .typed(|p: SoarName| Ok(summary_text("history_data", wrap("history", crate::history(crate::Name { name: p.name })?)))),
        Action::new("delete builder cache", "Remove build cache (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data", "summary.cache_data", "summary.total_objects"])
            .ops(&["BuildPrune"])
            .typed(|p: SoarBuildPrune| {
                Ok(summary_text("cache_data", crate::build_prune(crate::BuildPrune { keep_storage: Some(p.keep_storage), all: p.all, filters: p.filters })?))
            }),
    ]
}
