//! The body of a data-plane node process (see `tenantry_tests::node_process`): not a test of
//! its own. Ignored, so a test run skips it; the tests that need a killable node run this
//! binary again with this test's name and a configuration file.

use shared::config::ConfigSource;
use tenantry_tests::node_process::NODE_CONFIG_VAR;

#[test]
#[ignore = "the body of a node process that other tests start"]
fn serve_a_data_plane_node_from_the_node_config() {
    let Some(config_file) = std::env::var_os(NODE_CONFIG_VAR) else {
        return;
    };
    shared::observability::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let source = ConfigSource::load(Some(std::path::Path::new(&config_file))).unwrap();
        let config = data_plane::config::Config::from_source(&source).unwrap();
        let listener = std::net::TcpListener::bind(config.listen).unwrap();
        let state = data_plane::DataPlane::new(config).unwrap();
        data_plane::server::prepare(&state).await.unwrap();
        data_plane::server::serve(state, listener).await.unwrap();
    });
}
