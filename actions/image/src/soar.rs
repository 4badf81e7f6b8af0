//! Splunk SOAR Docker app compatibility: its image action names, parameter names and output
//! data paths, mapped onto the canonical actions.

use berth_sdk::prelude::*;
use berth_sdk::soar::{counted, wrap};

pub fn actions() -> Vec<Action> {
    vec![
        Action::new("list images", "Get a list of images (Splunk SOAR)")
            .read_only()
            .param(Param::bool("all").default(false))
            .param(Param::any("filters"))
            .param(Param::bool("digests").default(false))
            .output(&["data.*.images.*.Id", "data.*.images.*.RepoTags", "data.*.images.*.Created", "data.*.images.*.Size", "summary.total_objects"])
            .run(|p| Ok(wrap("images", crate::list(p)?))),
        Action::new("remove image", "Remove an image (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(Param::string("name").required().describe("Image Name or ID"))
            .param(Param::bool("force").default(false))
            .param(Param::bool("noprune").default(false))
            .output(&["data", "summary.total_objects"])
            .run(|p| counted(crate::remove(p)?)),
        Action::new("delete unused images", "Delete unused images (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(Param::any("filters"))
            .output(&["data", "summary.total_objects"])
            .run(crate::prune),
        Action::new("get image history", "Get the parent layers of an image (Splunk SOAR)")
            .read_only()
            .param(Param::string("name").required().describe("Image Name or ID"))
            .output(&[
                "data.*.history.*.Id",
                "data.*.history.*.Tags",
                "data.*.history.*.CreatedBy",
                "data.*.history.*.Created",
                "data.*.history.*.Size",
                "data.*.history.*.Comment",
                "summary.total_objects",
            ])
            .run(|p| Ok(wrap("history", crate::history(p)?))),
        Action::new("delete builder cache", "Remove build cache (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(Param::int("keep_storage").default(0))
            .param(Param::bool("all").default(false))
            .param(Param::any("filters"))
            .output(&["data", "summary.total_objects"])
            .run(crate::build_prune),
    ]
}
