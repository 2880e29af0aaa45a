"""The networks: the DNN classifier (torchvision or toycnn) and the per-class xNN with its loss."""
