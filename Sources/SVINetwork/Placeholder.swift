import SVICore
