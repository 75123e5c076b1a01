-- wrk script for the django-upload scenario: every request is a multipart/form-data POST carrying
-- one 10 MiB file (Django streams it to a temporary file: it is over FILE_UPLOAD_MAX_MEMORY_SIZE).
local boundary = "portico-bench-7MA4YWxkTrZu0gW"
wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\n"
  .. 'Content-Disposition: form-data; name="file"; filename="10m.bin"\r\n'
  .. "Content-Type: application/octet-stream\r\n\r\n"
  .. string.rep("x", 10 * 1024 * 1024) .. "\r\n"
  .. "--" .. boundary .. "--\r\n"
