package database

import "database/sql/driver"

var driverBadConn = driver.ErrBadConn
