"""Style explorer (issue 16): one plain HTML/JS page with sliders over a served model's style space, artists,
reference drawings and strength. The page talks only to the TF Serving REST API (`/v1/models/...`), which
`tf_gadn.explorer.app` passes through to a running server (the local one or real TF Serving), next to the page's
static files and the data set's test drawings."""
