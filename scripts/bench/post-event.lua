-- wrk script: POST an event-sized JSON body, as a webhook delivery does.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.rep("x", 600)
