//! Index templates per flavour, and the cluster version that picks it, from
//! `GET /` responses of each supported product line.

use serde_json::{Value, json};
use waymark_elasticsearch::templates::{Distribution, VersionError};
use waymark_elasticsearch::{
    IndexConfig, IndexKind, TemplateFlavour, TemplateOptions, Version, index_template,
};

fn root(name: &str) -> Version {
    let path = format!("{}/tests/fixtures/root/{name}", env!("CARGO_MANIFEST_DIR"));
    Version::from_root_response(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn versions_from_root_responses() {
    use Distribution::{Elasticsearch as Es, OpenSearch as Os};
    use TemplateFlavour::{Elasticsearch7, Elasticsearch8, OpenSearch};
    let cases = [
        ("es7.json", Es, 7, Elasticsearch7),
        ("es8.json", Es, 8, Elasticsearch8),
        ("es9.json", Es, 9, Elasticsearch8),
        ("os1.json", Os, 1, OpenSearch),
        ("os2.json", Os, 2, OpenSearch),
        ("os3.json", Os, 3, OpenSearch),
        // Compatibility mode reports an Elasticsearch number.
        ("os_compat.json", Os, 7, OpenSearch),
    ];
    for (file, distribution, major, flavour) in cases {
        let v = root(file);
        assert_eq!((v.distribution, v.major), (distribution, major), "{file}");
        assert_eq!(v.template_flavour().unwrap(), flavour, "{file}");
    }
    assert!(root("es9.json").is_known());
    assert!(!root("os_compat.json").is_known());
    assert_eq!(root("os2.json").minor, 17);
}

#[test]
fn unsupported_and_malformed_versions() {
    let v = Version::from_root_response(br#"{"version":{"number":"6.8.23"}}"#).unwrap();
    assert!(matches!(
        v.template_flavour(),
        Err(VersionError::Unsupported { .. })
    ));
    assert!(matches!(
        Version::from_root_response(br#"{"name":"x"}"#),
        Err(VersionError::Malformed(_))
    ));
    assert!(matches!(
        Version::from_root_response(b"<html>"),
        Err(VersionError::Malformed(_))
    ));
    let snapshot =
        Version::from_root_response(br#"{"version":{"number":"8.16.0-SNAPSHOT"}}"#).unwrap();
    assert_eq!((snapshot.major, snapshot.minor), (8, 16));
}

fn aliased() -> IndexConfig {
    IndexConfig {
        prefix: "prod".into(),
        use_aliases: true,
        ..Default::default()
    }
}

fn with_ilm() -> TemplateOptions {
    TemplateOptions {
        ilm_policy: Some("jaeger-ilm-policy".into()),
        priorities: [500, 501, 502],
        ..Default::default()
    }
}

#[test]
fn span_mapping_is_nested_where_jaeger_nests() {
    let t = index_template(
        IndexKind::Span,
        TemplateFlavour::Elasticsearch7,
        &IndexConfig::default(),
        &TemplateOptions::default(),
    );
    let props = &t.body["mappings"]["properties"];
    for path in [
        "/tags",
        "/process/properties/tags",
        "/references",
        "/references/properties/tags",
        "/logs",
        "/logs/properties/fields",
        "/scopeTags",
    ] {
        let field = props.pointer(path).unwrap_or_else(|| panic!("{path}"));
        assert_eq!(field["type"], "nested", "{path}");
        assert_eq!(field["dynamic"], false, "{path}");
    }
    for path in [
        "/traceID",
        "/spanID",
        "/parentSpanID",
        "/operationName",
        "/process/properties/serviceName",
        "/tags/properties/key",
        "/tags/properties/value",
        "/tags/properties/type",
        "/references/properties/refType",
    ] {
        assert_eq!(
            props.pointer(path).unwrap(),
            &json!({"type": "keyword", "ignore_above": 256}),
            "{path}"
        );
    }
    assert_eq!(props["startTime"]["type"], "long");
    assert_eq!(props["duration"]["type"], "long");
    assert_eq!(
        props["startTimeMillis"],
        json!({"type": "date", "format": "epoch_millis"})
    );
    assert_eq!(props["tag"]["type"], "object");
    let dynamic: Vec<&str> = t.body["mappings"]["dynamic_templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let (_, v) = d.as_object().unwrap().iter().next().unwrap();
            assert_eq!(v["mapping"]["type"], "keyword");
            v["path_match"].as_str().unwrap()
        })
        .collect();
    assert_eq!(dynamic, ["tag.*", "process.tag.*", "scopeTag.*"]);
    assert_eq!(t.path, "/_template/jaeger-span");
    assert_eq!(t.body["index_patterns"], "*jaeger-span-*");
    assert!(t.body.get("aliases").is_none());
    assert!(t.body["settings"].get("lifecycle").is_none());
    assert_eq!(t.body["settings"]["index.number_of_shards"], 5);
    assert_eq!(t.body["settings"]["index.number_of_replicas"], 1);
}

#[test]
fn envelopes_per_flavour() {
    // Elasticsearch 8/9: composable, everything under `template`.
    let t = index_template(
        IndexKind::Service,
        TemplateFlavour::Elasticsearch8,
        &aliased(),
        &with_ilm(),
    );
    assert_eq!(t.name, "prod-jaeger-service");
    assert_eq!(t.path, "/_index_template/prod-jaeger-service");
    assert_eq!(t.body["index_patterns"], "prod-jaeger-service-*");
    assert_eq!(t.body["priority"], 501);
    assert_eq!(
        t.body["template"]["settings"]["lifecycle"],
        json!({"name": "jaeger-ilm-policy", "rollover_alias": "prod-jaeger-service-write"})
    );
    assert_eq!(
        t.body["template"]["aliases"],
        json!({"prod-jaeger-service-read": {}})
    );
    assert!(t.body.get("mappings").is_none());

    // OpenSearch: legacy envelope, ISM's rollover alias, no ILM.
    let t = index_template(
        IndexKind::Span,
        TemplateFlavour::OpenSearch,
        &aliased(),
        &with_ilm(),
    );
    assert_eq!(t.path, "/_template/prod-jaeger-span");
    assert_eq!(t.body["index_patterns"], "*prod-jaeger-span-*");
    assert_eq!(
        t.body["settings"]["plugins.index_state_management.rollover_alias"],
        "prod-jaeger-span-write"
    );
    assert!(t.body["settings"].get("lifecycle").is_none());
    assert!(t.body.get("priority").is_none());

    // Jaeger's legacy dependencies pattern ignores the prefix.
    let t = index_template(
        IndexKind::Dependencies,
        TemplateFlavour::Elasticsearch7,
        &aliased(),
        &with_ilm(),
    );
    assert_eq!(t.body["index_patterns"], "*jaeger-dependencies-*");
    assert_eq!(t.body["mappings"], json!({}));
}

#[test]
fn template_snapshots() {
    let flavours = [
        ("es7", TemplateFlavour::Elasticsearch7),
        ("es8", TemplateFlavour::Elasticsearch8),
        ("opensearch", TemplateFlavour::OpenSearch),
    ];
    for (name, flavour) in flavours {
        let t = index_template(IndexKind::Span, flavour, &aliased(), &with_ilm());
        let shown: Value = json!({"path": t.path, "body": t.body});
        insta::assert_json_snapshot!(format!("span_{name}"), shown);
    }
    let t = index_template(
        IndexKind::Service,
        TemplateFlavour::Elasticsearch7,
        &IndexConfig::default(),
        &TemplateOptions::default(),
    );
    insta::assert_json_snapshot!("service_es7", json!({"path": t.path, "body": t.body}));
}
