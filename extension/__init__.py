"""extension"""
