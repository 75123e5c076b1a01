-- wrk script for the upload scenario: every request is a 10 MiB POST.
wrk.method = "POST"
wrk.body = string.rep("x", 10 * 1024 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
