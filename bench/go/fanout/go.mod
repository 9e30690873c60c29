module safeguard/bench/fanout

go 1.26
